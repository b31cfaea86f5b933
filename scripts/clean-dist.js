// Empties dist/ before a pack builds it: files of modules since removed must not ship.
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
