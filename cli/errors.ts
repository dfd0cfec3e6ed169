// One-line errors with a hint, and consistent exit codes, for every command.
import { GpuAllocationError, GpuDeviceLostError, GpuOutOfMemoryError, GpuUnavailableError } from '../core/errors.js';
import { LoadError, NotFoundError } from '../loaders/errors.js';
import { UsageError } from '../core/errors.js';
import { SamplerError } from '../runtime/errors.js';

export const EXIT = {
  ok: 0,
  /** The command ran and failed (bad model file, numeric error, …). */
  failure: 1,
  /** Bad arguments or input (unknown option, a model or file that does not exist, prompt longer than the context, …). */
  usage: 2,
  /** No WebGPU adapter: the machine needs a driver. */
  noGpu: 3,
} as const;

export function describeError(err: unknown): { line: string; hint?: string; code: number } {
  if (err instanceof GpuUnavailableError) return { line: err.message, code: EXIT.noGpu };
  if (err instanceof UsageError) return { line: err.message, hint: err.hint, code: EXIT.usage };
  // A path that does not exist is what the user typed; a file that exists but is bad stays a failure.
  if (err instanceof NotFoundError) return { line: err.message, code: EXIT.usage };
  if (err instanceof SamplerError) return { line: err.message, code: EXIT.usage };
  if (err instanceof LoadError) return { line: err.message, code: EXIT.failure };
  if (err instanceof GpuOutOfMemoryError) return { line: `${err.name}: ${err.message}`, hint: 'use a shorter --ctx, an ASER artifact (4-bit weights) or a GPU with more memory', code: EXIT.failure };
  if (err instanceof GpuAllocationError) return { line: `${err.name}: ${err.message}`, hint: 'the adapter limits one buffer to this size; see `aser info`', code: EXIT.failure };
  if (err instanceof GpuDeviceLostError) return { line: `${err.name}: ${err.message}`, hint: 'the GPU was reset or removed; run the command again (aser serve restarts the device itself)', code: EXIT.failure };
  if (err instanceof Error) {
    const hint = (err as Error & { hint?: string }).hint;
    return { line: `${err.name === 'Error' ? '' : err.name + ': '}${err.message}`.split('\n')[0]!, hint, code: EXIT.failure };
  }
  return { line: String(err), code: EXIT.failure };
}

export function reportError(err: unknown, verbose: boolean): number {
  const { line, hint, code } = describeError(err);
  process.stderr.write(`aser: error: ${line}\n`);
  if (hint) process.stderr.write(`aser: hint: ${hint}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  else if (code === EXIT.failure && !(err instanceof LoadError)) process.stderr.write('aser: (run with --verbose for details)\n');
  return code;
}
