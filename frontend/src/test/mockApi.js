import { vi } from "vitest";

// mockApi builds the stand-in for lib/api.js: every api function a vi.fn, the
// real ApiError, and onEvent recording its listeners so tests can push events.
export async function mockApi(importOriginal) {
  const real = await importOriginal();
  const listeners = {};
  return {
    ...real,
    api: Object.fromEntries(Object.keys(real.api).map((k) => [k, vi.fn()])),
    onEvent: vi.fn((kind, fn) => {
      listeners[kind] = fn;
      return () => delete listeners[kind];
    }),
    listeners,
  };
}

export function resetApi(api) {
  for (const fn of Object.values(api)) {
    fn.mockReset();
    fn.mockResolvedValue(undefined);
  }
}
