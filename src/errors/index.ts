/** Error handling helpers shared by every module. */
export { ignoreOnClose } from './ignore.js';
