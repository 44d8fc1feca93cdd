import { defaultClientConditions, defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  // Workspace packages are read from source (their `source` export), like the tests do.
  resolve: { conditions: ["source", ...defaultClientConditions] },
  // The dev server (its page talks to the API on 8787); the build is served by the API itself (examples/http-api), so there is no preview server.
  server: { host: "127.0.0.1", port: 5173 },
});
