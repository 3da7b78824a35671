import { defineConfig } from 'vitest/config';

// The SDK warns on every client that its 2027 releases need Node 22; the lockfile pins one that supports Node 20.
export default defineConfig({
  test: { testTimeout: 30_000, env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
});
