// A tiny WGSL preprocessor, the only templating kernels use (llama.cpp ggml-webgpu style):
//   #include "name.wgsl"      text of another embedded shader
//   #ifdef NAME / #ifndef NAME / #else / #endif   (nestable; NAME is defined when present in `defines`)
//   NAME                      replaced by its value wherever it appears as a whole word in code lines
// Shaders stay valid-looking WGSL; variants differ only in `defines`.

import type { Defines } from '../core/kernel-spec.js';
import { WgslPreprocessError } from './errors.js';

export function preprocessWgsl(
  source: string,
  defines: Defines,
  resolveInclude: (name: string) => string | undefined,
  fileName = '<shader>',
): string {
  const active = Object.entries(defines).filter(([, v]) => v !== false);
  const defined = new Set(active.map(([k]) => k));
  const substitutions = active
    .filter(([, v]) => v !== true)
    .map(([k, v]) => [new RegExp(`\\b${k}\\b`, 'g'), String(v)] as const);

  const expand = (text: string, name: string, depth: number): string[] => {
    if (depth > 8) throw new WgslPreprocessError(`${name}: #include nesting too deep`);
    const out: string[] = [];
    const stack: Array<{ taking: boolean; parentTaking: boolean; sawElse: boolean }> = [];
    const taking = () => (stack.length === 0 ? true : stack[stack.length - 1]!.taking);
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      const directive = line.match(/^\s*#(\w+)\s*(.*?)\s*$/);
      if (!directive) {
        if (taking()) out.push(line);
        return;
      }
      const [, word, arg] = directive as unknown as [string, string, string];
      const where = `${name}:${i + 1}`;
      switch (word) {
        case 'ifdef':
        case 'ifndef': {
          const cond = defined.has(arg) === (word === 'ifdef');
          stack.push({ taking: taking() && cond, parentTaking: taking(), sawElse: false });
          break;
        }
        case 'else': {
          const top = stack[stack.length - 1];
          if (!top || top.sawElse) throw new WgslPreprocessError(`${where}: unexpected #else`);
          top.sawElse = true;
          top.taking = top.parentTaking && !top.taking;
          break;
        }
        case 'endif':
          if (!stack.pop()) throw new WgslPreprocessError(`${where}: unexpected #endif`);
          break;
        case 'include': {
          if (!taking()) break;
          const inc = arg.replace(/^"|"$/g, '');
          const body = resolveInclude(inc);
          if (body === undefined) throw new WgslPreprocessError(`${where}: cannot #include "${inc}"`);
          out.push(...expand(body, inc, depth + 1));
          break;
        }
        default:
          throw new WgslPreprocessError(`${where}: unknown directive #${word}`);
      }
    });
    if (stack.length) throw new WgslPreprocessError(`${name}: missing #endif`);
    return out;
  };

  let code = expand(source, fileName, 0).join('\n');
  for (const [re, value] of substitutions) code = code.replace(re, value);
  return code;
}
