/** How errors are handled rather than dropped: the named shutdown-path exception (./ignore.ts). */
export { ignoreOnClose } from './ignore.js';
