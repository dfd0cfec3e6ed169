// `aser web`'s server over real HTTP: the site's files and the artifact directory, nothing outside them,
// read-only, and its refusals as one-line UsageErrors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStaticSite, type StaticSite } from '../../serve/static-site.js';
import { UsageError } from '../../core/errors.js';

/** A raw request (no URL normalisation by a client), so `..` reaches the server as sent. */
function get(url: string, path: string, method = 'GET'): Promise<{ status: number; body: string; type?: string }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, body, type: res.headers['content-type'] }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('aser web static server', () => {
  let root: string;
  let site: StaticSite;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'aser-site-'));
    mkdirSync(join(root, 'site', 'data'), { recursive: true });
    mkdirSync(join(root, 'art'));
    writeFileSync(join(root, 'site', 'index.html'), '<p>page</p>');
    writeFileSync(join(root, 'site', 'app.js'), 'export {};');
    writeFileSync(join(root, 'site', 'data', 'a.txt'), 'text');
    writeFileSync(join(root, 'art', 'manifest.json'), '{}');
    writeFileSync(join(root, 'secret.txt'), 'secret');
    site = await serveStaticSite({ site: join(root, 'site'), artifact: join(root, 'art'), port: 0 });
  });
  afterAll(async () => {
    await site?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the site on 127.0.0.1 and the artifact at /artifact/', async () => {
    expect(site.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await get(site.url, '/');
    expect([index.status, index.body, index.type]).toEqual([200, '<p>page</p>', 'text/html; charset=utf-8']);
    expect((await get(site.url, '/data/a.txt')).body).toBe('text');
    expect((await get(site.url, '/artifact/manifest.json')).body).toBe('{}');
    expect((await get(site.url, '/app.js', 'HEAD')).status).toBe(200);
  });

  it('answers 404 outside its roots, 405 to writes', async () => {
    for (const path of ['/../secret.txt', '/artifact/../secret.txt', '/%2e%2e/secret.txt', '/artifact/%2e%2e/secret.txt', '/nope', '/data', '/artifact/']) {
      const r = await get(site.url, path);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('secret');
    }
    expect((await get(site.url, '/index.html', 'POST')).status).toBe(405);
    expect((await get(site.url, '/%E0%A4%A')).status).toBe(400);
  });

  it('refuses a missing site or artifact directory with a UsageError', async () => {
    await expect(serveStaticSite({ site: join(root, 'art'), port: 0 })).rejects.toThrow(UsageError);
    await expect(serveStaticSite({ site: join(root, 'site'), artifact: join(root, 'none'), port: 0 })).rejects.toThrow(/no such directory/);
  });
});
