// What a kernel asks the pipeline cache for: a shader file, its preprocessor defines and entry point.
// Kernels build these; the runtime compiles them.

/** Values for the WGSL preprocessor (runtime/wgsl.ts): a name is defined when present and not false. */
export type Defines = Record<string, string | number | boolean>;

export interface KernelSpec {
  /** File under kernels/, e.g. "rmsnorm.wgsl". */
  shader: string;
  defines?: Defines;
  entryPoint?: string;
  /** Pipeline label: the kernel name plus its variant flags, shown in Dawn errors and profiles. */
  label: string;
}
