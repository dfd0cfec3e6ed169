// Loading node-llama-cpp (llama.cpp's prebuilt CPU and Vulkan binaries, ~700 MB), which stays out of the
// default install: `npm i --no-save node-llama-cpp`, or point ASER_NODE_LLAMA_CPP at an installed copy's
// package directory (…/node_modules/node-llama-cpp) kept elsewhere, e.g. out of reach of `npm install`'s pruning.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const NODE_LLAMA_CPP_HINT = 'install it (700 MB of prebuilt binaries, kept out of the default install) with npm i --no-save node-llama-cpp, or set ASER_NODE_LLAMA_CPP to an installed node_modules/node-llama-cpp';

/** The module, or the reason it cannot be loaded. */
export async function importNodeLlamaCpp<T>(): Promise<{ module: T } | { error: string }> {
  const dir = process.env.ASER_NODE_LLAMA_CPP;
  const spec = dir ? pathToFileURL(join(dir, 'dist', 'index.js')).href : 'node-llama-cpp';
  try {
    return { module: (await import(spec)) as T };
  } catch (err) {
    return { error: `cannot load node-llama-cpp from ${dir ?? 'node_modules'} (${(err as Error).message.split('\n')[0]}); ${NODE_LLAMA_CPP_HINT}` };
  }
}
