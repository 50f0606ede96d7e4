//! Compiles the thin C layer over libavif, libheif and LibRaw (Debian: libavif-dev,
//! libheif-dev, libraw-dev, installed by scripts/system-deps.sh) and links the three.

fn main() {
    println!("cargo:rerun-if-changed=csrc/codecs.c");
    let mut build = cc::Build::new();
    for library in ["libavif", "libheif", "libraw_r"] {
        let found = pkg_config::Config::new()
            .probe(library)
            .unwrap_or_else(|e| panic!("{library} not found ({e}); run scripts/system-deps.sh"));
        for path in found.include_paths {
            build.include(path);
        }
    }
    build.file("csrc/codecs.c").warnings(true).compile("ims_codecs");
}
