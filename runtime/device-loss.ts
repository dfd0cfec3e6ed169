/// <reference types="@webgpu/types" />
// Device loss as the executor reports it: once the device's lost promise settles, every later call
// fails with GpuDeviceLostError; and a call that failed while the device was going down (the promise
// may settle a moment after the failing GPU call) is reported as the loss, not as its own error.
import { GpuDeviceLostError } from '../core/errors.js';

/** How long a failed call waits for the lost promise before its own error stands. */
const LOSS_GRACE_MS = 250;

export class DeviceLossWatch {
  private info?: GPUDeviceLostInfo;

  constructor(
    private readonly device: GPUDevice,
    private readonly modelId: string,
  ) {
    device.lost.then((info) => (this.info = info));
  }

  get lost(): boolean {
    return this.info !== undefined;
  }

  /** The error every call gets once the device is lost. */
  error(): GpuDeviceLostError {
    const info = this.info!;
    return new GpuDeviceLostError(`${this.modelId}: the GPU device was lost (${info.reason}${info.message ? `: ${info.message.split('\n')[0]}` : ''}); re-create the device and the executor`, info.reason);
  }

  /**
   * Rethrows `err` from a failed call, as the device loss if the device is lost or goes within the
   * grace time. `callerError` (the call was refused, no GPU failure) skips the wait.
   */
  async rethrow(err: unknown, callerError: boolean): Promise<never> {
    if (!this.info && !callerError) {
      await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, LOSS_GRACE_MS))]);
    }
    if (this.info) throw this.error();
    throw err;
  }
}
