/** The compile stage: generated C++ in, a verified shared library on disk out, cached by content. */
import { _resetMemoryCacheForTests as forgetBuilds } from "./compileSource.js";
import { _forgetIndexedForTests } from "./kernelIndex.js";

export { compileSource, buildTarget, NO_OPENMP_WARNING_CODE, type BuildTarget, type CompiledLibrary, type SourceOptions } from "./compileSource.js";
export { findIndexed, kernelIndexKey, recordIndexed, type IndexedKernel } from "./kernelIndex.js";
export { entryChecksums, type EntryChecksums } from "./diskCache.js";
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

/** Forgets every build, index lookup and cache-dir decision of this process, so a test can observe the disk cache again. */
export function _resetMemoryCacheForTests(): void {
  forgetBuilds();
  _forgetIndexedForTests();
}
