import { BlockvaultError } from './errors.js';
import { nameBytesMax } from './limits.js';

// vm and disk names become directory names in the repository and path
// components in the mount, so they are restricted to a safe alphabet.
const namePattern = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

export function checkName(kind: 'vm' | 'disk', name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new BlockvaultError('USAGE', `--${kind} is required`);
  }
  if (Buffer.byteLength(name) > nameBytesMax || !namePattern.test(name) || name.includes('..')) {
    throw new BlockvaultError(
      'BAD_INPUT',
      `invalid ${kind} name ${JSON.stringify(name)}: use letters, digits and . _ + - ` +
        `(not starting with . or -, no "..", at most ${nameBytesMax} bytes)`,
    );
  }
  return name;
}
