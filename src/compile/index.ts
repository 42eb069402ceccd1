/** The compile stage: generated C++ in, a verified shared library on disk out, cached by content. */
export { compileSource, _resetMemoryCacheForTests, NO_OPENMP_WARNING_CODE, type CompiledLibrary, type SourceOptions } from "./compileSource.js";
export { cacheKey, CACHE_FORMAT_VERSION, sha256, sourceIdentity } from "./cacheKey.js";
export { compilerSlots, splitBuilds } from "./compilerSlots.js";
export { compilerInfo, type CompilerInfo } from "./compilerInfo.js";
export { listCache, clearCache, type CacheEntrySummary } from "./cacheMaintenance.js";
export {
  defaultCacheDir,
  DEFAULT_CXXFLAGS,
  type CompileOptions,
  type CompileProgressEvent,
} from "./options.js";
export { CACHE_FALLBACK_WARNING_CODE } from "./usableCacheDir.js";
export {
  CompileError,
  CompilerNotFoundError,
  CompilerProbeError,
  CacheDirError,
  CacheLockTimeoutError,
} from "./errors.js";
