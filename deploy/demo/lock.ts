import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * One demo per data folder: two processes opening the same embedded Postgres folder would
 * corrupt it (PGlite does not lock it). A lock file with our pid; a stale one (its process
 * gone, e.g. after kill -9) is taken over.
 */
export function lockDataDir(dir: string): () => void {
  const file = join(dir, "demo.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`another demo (pid ${pid}) uses ${dir}; stop it, or set DATALAB_DEMO_DIR to another folder`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new Error(`cannot lock ${dir}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
