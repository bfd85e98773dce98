// node --import this file: installs trace-imports.mjs's hooks.
import { register } from 'node:module';

register('./trace-imports.mjs', import.meta.url);
