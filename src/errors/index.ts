/** Error handling helpers: failures are handled or ignored on purpose, never dropped silently. */
export { ignoreOnClose } from './ignore.js';
