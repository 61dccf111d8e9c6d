//! `kv.put` with a price: every byte a `put` lifts into the host costs one unit of fuel, so a loop
//! of large `put`s runs out of fuel (the same on every replica) long before it could fill the
//! host's memory. Defined with `func_wrap` over the generated binding (which only sees
//! `&mut HostState`, not the store's fuel), then handed to the same `Host::put`.

use wasmtime::component::Linker;
use wasmtime::{StoreContextMut, Trap};

use super::bindings::iroh_raft::plugin::kv::Host;
use super::host_state::HostState;
use super::world::interface;

/// Fuel a `put` of `key` and `value` costs: one unit per byte lifted.
pub(crate) fn put_cost(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

fn put(
    mut store: StoreContextMut<'_, HostState>,
    (key, value): (Vec<u8>, Vec<u8>),
) -> wasmtime::Result<(Result<(), String>,)> {
    let cost = put_cost(&key, &value);
    let fuel = store.get_fuel()?;
    if cost > fuel {
        store.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    store.set_fuel(fuel - cost)?;
    Ok((Host::put(store.data_mut(), key, value)?,))
}

/// Replaces the generated `kv.put` in `linker` (defined before) with the priced one.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(&interface("kv"))?.func_wrap("put", put)?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::put_cost;

    #[test]
    fn a_put_costs_one_unit_of_fuel_per_byte_lifted() {
        assert_eq!(put_cost(b"", b""), 0);
        assert_eq!(put_cost(b"key", &[0; 1000]), 1003);
    }
}
