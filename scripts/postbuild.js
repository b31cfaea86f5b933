// Make the package's executables executable: tsc does not set file modes.
import { chmodSync, existsSync } from 'node:fs';

for (const bin of ['dist/crosvm-sim/cli.js', 'dist/cli/main.js']) {
  if (existsSync(bin)) chmodSync(bin, 0o755);
}
