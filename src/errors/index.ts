export { errorCatalog, type ErrorCode, type ErrorSpec } from './catalog.js';
export { AppError, isAppError, type AppErrorOptions } from './app-error.js';
