// What the ensure-* scripts share: whether a path is a program this user may run.
import { accessSync, constants, statSync } from 'node:fs';

export function isExecutableFile(p) {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
