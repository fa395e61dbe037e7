export { ignoreOnClose } from './ignore.js';
