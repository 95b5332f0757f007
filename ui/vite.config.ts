/// <reference types="vitest/config" />
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// The viewer is served by holdfast-signal from ui/dist and embedded in the
// desktop app's webview. No framework: a canvas and a little TypeScript.
export default defineConfig({
  root: __dirname,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: { input: { viewer: resolve(__dirname, 'index.html'), app: resolve(__dirname, 'app.html') } },
  },
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
});
