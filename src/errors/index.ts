/** Error handling helpers: errors are handled, not dropped (see ./ignore.ts). */
export { ignoreOnClose } from './ignore.js';
