/**
 * Fargate task sizes: each CPU value allows a range of memory. A task's (cpu, memoryMiB) limits are
 * rounded up to the smallest size that holds them.
 */
const SIZES: readonly { cpu: number; min: number; max: number; step: number }[] = [
  { cpu: 256, min: 512, max: 2048, step: 1024 },
  { cpu: 512, min: 1024, max: 4096, step: 1024 },
  { cpu: 1024, min: 2048, max: 8192, step: 1024 },
  { cpu: 2048, min: 4096, max: 16384, step: 1024 },
  { cpu: 4096, min: 8192, max: 30720, step: 1024 },
  { cpu: 8192, min: 16384, max: 61440, step: 4096 },
  { cpu: 16384, min: 32768, max: 122880, step: 8192 },
];

export interface FargateSize {
  /** CPU units as ECS wants them in overrides (1024 = 1 vCPU). */
  cpu: string;
  memory: string;
}

export function fargateSize(vcpu: number, memoryMiB: number): FargateSize {
  const wantCpu = Math.ceil(vcpu * 1024);
  for (const s of SIZES) {
    if (s.cpu < wantCpu || s.max < memoryMiB) continue;
    let memory = Math.max(s.min, memoryMiB);
    if (s.cpu === 256 && memory > 512) memory = Math.ceil(memory / 1024) * 1024;
    else if (s.cpu !== 256) memory = s.min + Math.ceil((memory - s.min) / s.step) * s.step;
    return { cpu: String(s.cpu), memory: String(Math.min(memory, s.max)) };
  }
  return { cpu: '16384', memory: '122880' };
}
