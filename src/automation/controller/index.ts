/** A site's automation controller (docs/automation.md): the process `sanbox automation serve` runs. */
export { AutomationController, Refusal } from './controller.js';
export { controllerHttp } from './api.js';
export { checkConfig, type ControllerConfig } from './config.js';
