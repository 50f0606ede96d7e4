//! What the batch commands take: files, directories (walked recursively, in name order),
//! http(s) URLs, and `@LIST` files naming any of these one per line (`#` starts a comment).

use anyhow::Context;
use media::fetch::Fetcher;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Url(String),
}

impl Input {
    pub async fn read(&self, fetcher: &Fetcher) -> anyhow::Result<Vec<u8>> {
        match self {
            Input::File(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display())),
            Input::Url(url) => Ok(fetcher.fetch(url).await?),
        }
    }

    /// The file name (or the URL): what a library sample is called.
    pub fn short_name(&self) -> String {
        match self {
            Input::File(path) => path.file_name().map_or_else(|| self.label(), |n| n.to_string_lossy().into_owned()),
            Input::Url(url) => url.clone(),
        }
    }

    /// How the input is named in reports.
    pub fn label(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Url(url) => url.clone(),
        }
    }
}

fn is_url(arg: &str) -> bool {
    arg.starts_with("http://") || arg.starts_with("https://")
}

fn walk(dir: &Path, out: &mut Vec<Input>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(Input::File(path));
        }
    }
    Ok(())
}

fn add(arg: &str, out: &mut Vec<Input>, depth: usize) -> anyhow::Result<()> {
    if is_url(arg) {
        out.push(Input::Url(arg.to_string()));
    } else if let Some(list) = arg.strip_prefix('@') {
        anyhow::ensure!(depth < 4, "@lists nest too deep at {list}");
        let text = std::fs::read_to_string(list).with_context(|| format!("cannot read the list {list}"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            add(line, out, depth + 1)?;
        }
    } else {
        let path = Path::new(arg);
        if path.is_dir() {
            walk(path, out)?;
        } else {
            anyhow::ensure!(path.is_file(), "{arg} is not a file, a directory, an http(s) URL or an @list");
            out.push(Input::File(path.to_path_buf()));
        }
    }
    Ok(())
}

/// Every input the arguments name, in order.
pub fn expand(args: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        add(arg, &mut out, 0)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_urls_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b.jpg", "a.png", "sub/c.gif"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let list = dir.path().join("list.txt");
        std::fs::write(
            &list,
            format!("# images\nhttps://example.com/x.jpg\n\n{}\n", dir.path().join("a.png").display()),
        )
        .unwrap();
        let inputs = expand(&[dir.path().join("sub").display().to_string(), format!("@{}", list.display())]).unwrap();
        assert_eq!(
            inputs,
            vec![
                Input::File(dir.path().join("sub/c.gif")),
                Input::Url("https://example.com/x.jpg".into()),
                Input::File(dir.path().join("a.png")),
            ]
        );
        assert!(expand(&["/no/such/file".into()]).is_err());
    }
}
