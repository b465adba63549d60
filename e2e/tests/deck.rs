//! decK's offline validation of every Kong config kongress is known to emit: the `config` of
//! each translation golden file (`src/translate/testdata/*.golden.yaml`) and what
//! `kongress translate` prints for `config/samples`.
//!
//! `deck file validate` talks to no Kong: it checks the file against the schemas decK has of
//! Kong's entities (field names and types), the references between entities and duplicate
//! names. It does not check plugin configs, expressions or certificate contents (the golden
//! files hold placeholders for those); Kong's router engine checks expressions in the unit
//! tests, and the push tests exercise the rest. Needs no cluster, only `make tools` (the test
//! fails, never skips, without decK).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use kongress_e2e::{deck, kongress_binary, workspace_dir};

/// Where this test writes the configs it hands to decK.
fn scratch(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deck").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs `deck file validate` on one file; `Err` carries decK's own words.
fn deck_validate(file: &Path) -> Result<()> {
    let output = Command::new(deck()?)
        .args(["file", "validate", "--analytics=false", "--no-color"])
        .arg(file)
        .output()
        .context("running deck")?;
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "deck file validate {} failed ({}):\n{}{}",
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `config` document of a golden file, as YAML decK reads.
fn golden_config(golden: &Path) -> Result<String> {
    let text = std::fs::read_to_string(golden).with_context(|| format!("reading {}", golden.display()))?;
    let document: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", golden.display()))?;
    let config = document
        .get("config")
        .with_context(|| format!("{} has no `config` document", golden.display()))?;
    serde_yaml_ng::to_string(config).context("encoding the config")
}

#[test]
fn every_golden_config_passes_deck_file_validate() -> Result<()> {
    deck()?;
    let testdata = workspace_dir().join("src/translate/testdata");
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(&testdata)
        .with_context(|| format!("reading {}", testdata.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(".golden.yaml"))
        .collect();
    goldens.sort();
    ensure!(!goldens.is_empty(), "no golden files in {}", testdata.display());

    let dir = scratch("goldens")?;
    let mut failures = Vec::new();
    for golden in &goldens {
        let name = golden.file_name().context("golden file name")?;
        let file = dir.join(name);
        let outcome = golden_config(golden)
            .and_then(|config| std::fs::write(&file, config).context("writing the config"))
            .and_then(|()| deck_validate(&file));
        if let Err(error) = outcome {
            failures.push(format!("{}: {error:#}", golden.display()));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} golden configs fail decK's validation:\n\n{}",
        failures.len(),
        goldens.len(),
        failures.join("\n\n")
    );
    Ok(())
}

#[test]
fn the_config_kongress_translate_prints_for_the_samples_passes_deck_file_validate() -> Result<()> {
    deck()?;
    let samples = workspace_dir().join("config/samples");
    let output = Command::new(kongress_binary()?)
        .args(["translate", "--output", "config", "-f"])
        .arg(&samples)
        .output()
        .context("running kongress translate")?;
    ensure!(
        output.status.success(),
        "kongress translate -f {} failed ({}):\n{}",
        samples.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let file = scratch("samples")?.join("config.yaml");
    std::fs::write(&file, &output.stdout).with_context(|| format!("writing {}", file.display()))?;
    deck_validate(&file)
}
