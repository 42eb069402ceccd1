import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cacheKey, compilerInfo, defaultCacheDir, sha256 } from "../../src/compile/index.js";
import { featureMacros } from "../../src/compile/compilerInfo.js";
import { COMPILER_TUNABLES, compilerEnv, defaultCxx, defaultCxxflags, DEFAULT_CXXFLAGS } from "../../src/compile/options.js";

describe("cacheKey", () => {
  const base = ["src", ["g++", "-O3"], "g++ 12.2.0", "__AVX2__ __FMA__"] as const;
  const key = (...args: Parameters<typeof cacheKey>) => cacheKey(...args);

  it("is a stable sha256 hex digest", () => {
    expect(key(base[0], [...base[1]], base[2], base[3])).toMatch(/^[0-9a-f]{64}$/);
    expect(key(base[0], [...base[1]], base[2], base[3])).toBe(key(base[0], [...base[1]], base[2], base[3]));
  });

  it("changes with every input", () => {
    const keys = [
      key("src", ["g++", "-O3"], "g++ 12.2.0", "__AVX2__ __FMA__"),
      key("src2", ["g++", "-O3"], "g++ 12.2.0", "__AVX2__ __FMA__"),
      key("src", ["g++", "-O2"], "g++ 12.2.0", "__AVX2__ __FMA__"),
      key("src", ["g++", "-O3"], "g++ 13.1.0", "__AVX2__ __FMA__"),
      key("src", ["g++", "-O3"], "g++ 12.2.0", "__AVX2__ __AVX512F__ __FMA__"),
      key("src", ["g++", "-O3"], "g++ 12.2.0", "__AVX2__ __FMA__", "header"),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("does not confuse fields whose concatenations are equal", () => {
    expect(key("a", ["b c"], "v", "f")).not.toBe(key("a", ["b", "c"], "v", "f"));
    expect(key("ab", ["c"], "v", "f")).not.toBe(key("a", ["bc"], "v", "f"));
    // the header and the prelude's name and text are separate fields too
    expect(key("a", ["b"], "v", "f", "h", { name: "p", text: "t" })).not.toBe(key("a", ["b"], "v", "f", "hp", { name: "", text: "t" }));
  });

  it("changes with the prelude's name and text, long or short", () => {
    const long = "x".repeat(10_000);
    const keys = [
      key("src", ["g++"], "v", "f"),
      key("src", ["g++"], "v", "f", undefined, { name: "p.h", text: "t" }),
      key("src", ["g++"], "v", "f", undefined, { name: "q.h", text: "t" }),
      key("src", ["g++"], "v", "f", undefined, { name: "p.h", text: long }),
      key("src", ["g++"], "v", "f", undefined, { name: "p.h", text: `${long}y` }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe("sha256", () => {
  it("gives node's digest for long texts, remembered or not", () => {
    // More distinct long texts than it remembers, twice: the second round finds some remembered and some evicted.
    const texts = Array.from({ length: 40 }, (_, i) => `${i}:`.padEnd(5000 + i, String.fromCharCode(97 + (i % 26))));
    for (let round = 0; round < 2; round++)
      for (const text of [...texts, ...texts.slice(30)]) expect(sha256(text)).toBe(createHash("sha256").update(text).digest("hex"));
    expect(sha256(new TextEncoder().encode(texts[0]))).toBe(sha256(texts[0]));
  });
});

describe("compilerInfo", () => {
  it("reports the version and this machine's feature macros, once per compiler", async () => {
    const first = compilerInfo("g++", ["-O3", "-march=native"]);
    expect(compilerInfo("g++", ["-O3", "-march=native"])).toBe(first);
    const info = await first;
    expect(info.version).toMatch(/\d+\.\d+/);
    if (process.arch === "x64") expect(info.cpuFeatures.split(" ")).toContain("__SSE2__");
    expect(info.cpuFeatures).not.toMatch(/__GNUC__|__VERSION__/);
  });

  it.skipIf(process.arch !== "x64")("sees the features the flags enable", async () => {
    const baseline = await compilerInfo("g++", ["-march=x86-64"]);
    const avx512 = await compilerInfo("g++", ["-march=x86-64", "-mavx512f"]);
    expect(baseline.cpuFeatures.split(" ")).not.toContain("__AVX512F__");
    expect(avx512.cpuFeatures.split(" ")).toContain("__AVX512F__");
  });
});

describe("featureMacros", () => {
  it("keeps ISA feature macros and drops the rest, sorted", () => {
    const dump = [
      "#define __GNUC__ 12",
      "#define __FMA__ 1",
      "#define __AVX512BF16__ 1",
      "#define __AVX2__ 1",
      "#define __F16C__ 1",
      "#define __SIZEOF_INT__ 4",
      "#define __x86_64__ 1",
      "#define __ARM_FEATURE_FMA 1",
      "#define __tune_znver3__ 1",
      "#define __LP64__ 1",
    ].join("\n");
    expect(featureMacros(dump)).toEqual(["__ARM_FEATURE_FMA", "__AVX2__", "__AVX512BF16__", "__F16C__", "__FMA__", "__x86_64__"]);
  });
});

describe("defaults from the environment", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("picks the cache dir from MINDUCTOR_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache", () => {
    vi.stubEnv("MINDUCTOR_CACHE_DIR", "/somewhere/kernels");
    vi.stubEnv("XDG_CACHE_HOME", "/xdg");
    expect(defaultCacheDir()).toBe("/somewhere/kernels");
    vi.stubEnv("MINDUCTOR_CACHE_DIR", "");
    expect(defaultCacheDir()).toBe(join("/xdg", "minductor"));
    vi.stubEnv("XDG_CACHE_HOME", "");
    expect(defaultCacheDir()).toBe(join(homedir(), ".cache", "minductor"));
  });

  it("picks the compiler and flags from MINDUCTOR_CXX and MINDUCTOR_CXXFLAGS", () => {
    vi.stubEnv("MINDUCTOR_CXX", "");
    vi.stubEnv("MINDUCTOR_CXXFLAGS", "  ");
    expect(defaultCxx()).toBe("g++");
    expect(defaultCxxflags()).toEqual([...DEFAULT_CXXFLAGS]);
    vi.stubEnv("MINDUCTOR_CXX", "clang++");
    vi.stubEnv("MINDUCTOR_CXXFLAGS", " -O2  -shared\t-fPIC ");
    expect(defaultCxx()).toBe("clang++");
    expect(defaultCxxflags()).toEqual(["-O2", "-shared", "-fPIC"]);
  });

  it("gives the compiler glibc's malloc tunables, keeping those the caller's GLIBC_TUNABLES names", () => {
    expect(compilerEnv({})).toEqual({ GLIBC_TUNABLES: "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864" });
    expect(compilerEnv({ GLIBC_TUNABLES: "" })).toEqual(compilerEnv({}));
    // the caller's value of one of ours wins; their other tunables pass through, in their order, before ours
    expect(compilerEnv({ GLIBC_TUNABLES: "glibc.malloc.hugetlb=0:glibc.rtld.optional_static_tls=4096" })).toEqual({
      GLIBC_TUNABLES: "glibc.malloc.hugetlb=0:glibc.rtld.optional_static_tls=4096:glibc.malloc.top_pad=67108864",
    });
    const all = Object.entries(COMPILER_TUNABLES).map(([name]) => `${name}=7`).join(":");
    expect(compilerEnv({ GLIBC_TUNABLES: all })).toEqual({ GLIBC_TUNABLES: all });
  });
});
