//! Checks a component before it is accepted: that the bytes are a component at all, and that it
//! belongs to the world of the expected kind and imports nothing else.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;
use super::world::{World, interface};
use crate::proto::PluginKind;

/// What validation learned about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Its kind.
    pub kind: PluginKind,
    /// sha256 of the `.wasm` bytes.
    pub sha256: [u8; 32],
    /// Size of the `.wasm` bytes.
    pub size: usize,
    /// Whether it exports the optional `migration` interface.
    pub has_migration: bool,
    /// Whether it exports the optional `resources` interface (names what requests touch).
    pub has_resources: bool,
    /// Everything it imports (a subset of what its kind may).
    pub imports: Vec<String>,
}

/// Tells garbage, core modules and components apart by their header.
pub(crate) fn check_header(wasm: &[u8]) -> Result<(), PluginError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(PluginError::NotWasm);
    }
    let version: [u8; 4] = [wasm[4], wasm[5], wasm[6], wasm[7]];
    match version {
        [1, 0, 0, 0] => Err(PluginError::CoreModule),
        // Component model binary: version 0x0d, layer 1.
        [0x0d, 0, 1, 0] => Ok(()),
        [a, b, c, d] => Err(PluginError::Invalid {
            reason: format!(
                "unsupported WebAssembly version/layer {a:#04x} {b:#04x} {c:#04x} {d:#04x}"
            ),
        }),
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the component's exports and imports against the world of `kind`.
pub(crate) fn check_world(
    engine: &Engine,
    component: &Component,
    kind: PluginKind,
    sha256: [u8; 32],
    size: usize,
) -> Result<ComponentInfo, PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();

    let expected = interface(kind.export());
    if !exports.contains(&expected) {
        let found = match PluginKind::ALL
            .into_iter()
            .find(|other| exports.contains(&interface(other.export())))
        {
            Some(other) => format!(
                "this component exports `{}`: it is a {other} plugin (deploy it with `--kind {other}`)",
                interface(other.export())
            ),
            None if exports.is_empty() => "this component exports nothing".to_string(),
            None => format!("this component exports only {}", quoted(&exports)),
        };
        return Err(PluginError::WrongWorld {
            expected: kind,
            expected_export: expected,
            found,
        });
    }

    let allowed: Vec<String> = kind.imports().iter().map(|name| interface(name)).collect();
    if let Some(import) = imports.iter().find(|import| !allowed.contains(import)) {
        return Err(PluginError::ForbiddenImport {
            kind,
            import: import.clone(),
            allowed: quoted(&allowed),
        });
    }

    let has_migration =
        kind.optional_exports().contains(&"migration") && exports.contains(&interface("migration"));
    let has_resources =
        kind.optional_exports().contains(&"resources") && exports.contains(&interface("resources"));
    Ok(ComponentInfo {
        kind,
        sha256,
        size,
        has_migration,
        has_resources,
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(check_header(b""), Err(PluginError::NotWasm)));
        assert!(matches!(
            check_header(b"hello world"),
            Err(PluginError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(PluginError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(
            check_header(b"\0asm\x02\0\0\0"),
            Err(PluginError::Invalid { .. })
        ));
    }
}
