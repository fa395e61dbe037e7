/** The monitor's event stream: the service kit's journal (`monitor.*` and `resource.*` events). */
export { ServiceEvents as MonitorEvents, formatEvent, type ServiceEvent as MonitorEvent } from '../service-kit/index.js';
