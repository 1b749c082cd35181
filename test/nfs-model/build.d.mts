export function shimMissing(): string | undefined;
export function buildShim(): string;
export function preloadWith(shim: string, existing?: string): string;
export function nfsEnv(shim: string, options?: { tickets?: 'detect' | 'on'; base?: NodeJS.ProcessEnv }): NodeJS.ProcessEnv;
export function peerEnv(shim: string, base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
