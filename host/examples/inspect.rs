use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut cfg = Config::new();
    cfg.consume_fuel(true);
    let engine = Engine::new(&cfg).unwrap();
    let c = Component::from_file(&engine, &path).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker.define_unknown_imports_as_traps(&c).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(u64::MAX).unwrap();
    let inst = linker.instantiate(&mut store, &c).unwrap();
    let f = inst.get_typed_func::<(u64, u64), (f64,)>(&mut store, "run").unwrap();
    let t = std::time::Instant::now();
    let (r,) = f.call(&mut store, (7, 1_000_000)).unwrap();
    println!("result {r} in {:?}, fuel used {}", t.elapsed(), u64::MAX - store.get_fuel().unwrap());
}
