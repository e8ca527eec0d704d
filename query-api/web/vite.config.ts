import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by the query API at /app; built files are content-hashed under assets/.
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  css: {
    preprocessorOptions: {
      scss: { quietDeps: true, silenceDeprecations: ["mixed-decls", "import", "global-builtin"] },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
});
