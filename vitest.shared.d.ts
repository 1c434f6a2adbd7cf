import type { ViteUserConfig } from "vitest/config";
export declare function sharedTestConfig(_packageDir: string, extra?: ViteUserConfig["test"]): ViteUserConfig;
//# sourceMappingURL=vitest.shared.d.ts.map