// The web page's server (`aser web`): the static site `npm run web:build` wrote, and optionally one
// artifact directory under /artifact/, on a loopback address. Read-only: GET and HEAD of regular files
// inside the two roots; anything else is 404/405, never a path outside them.
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { UsageError } from '../core/errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.txt': 'text/plain; charset=utf-8', '.png': 'image/png',
};

export interface StaticSiteOptions {
  /** The built site (dist/web). */
  site: string;
  /** An artifact directory served at /artifact/. */
  artifact?: string;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Called with each request line and its status. */
  log?: (line: string) => void;
}

export interface StaticSite {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** The file under `root` that `rel` (already URL-decoded) names, or undefined when it would leave root. */
function inside(root: string, rel: string): string | undefined {
  const path = resolve(root, `.${sep}${rel}`);
  return path === root || path.startsWith(root + sep) ? path : undefined;
}

export async function serveStaticSite(o: StaticSiteOptions): Promise<StaticSite> {
  const site = resolve(o.site);
  if (!existsSync(join(site, 'index.html')) || !existsSync(join(site, 'app.js'))) {
    throw new UsageError(`${site} holds no built site (index.html, app.js)`, 'run `npm run web:build` first');
  }
  const artifact = o.artifact ? resolve(o.artifact) : undefined;
  if (artifact && !(existsSync(artifact) && statSync(artifact).isDirectory())) throw new UsageError(`--artifact ${o.artifact}: no such directory`);
  const host = o.host ?? '127.0.0.1';

  const server = createServer((req, res) => {
    const done = (status: number, message?: string) => {
      if (message !== undefined) {
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${message}\n`);
      }
      o.log?.(`${req.method} ${req.url} ${status}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return done(405, 'only GET and HEAD');
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return done(400, 'bad URL');
    }
    if (pathname.includes('\0')) return done(400, 'bad URL');
    let file: string | undefined;
    if (pathname === '/artifact' || pathname.startsWith('/artifact/')) {
      file = artifact ? inside(artifact, pathname.slice('/artifact'.length)) : undefined;
    } else {
      file = inside(site, pathname.endsWith('/') ? `${pathname}index.html` : pathname);
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) return done(404, 'not found');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return done(200);
    }
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
    done(200);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'EADDRINUSE' ? new UsageError(`port ${o.port} on ${host} is in use`, 'pick another --port (0 = any free one)') : err));
    server.listen(o.port, host, () => ok());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}
