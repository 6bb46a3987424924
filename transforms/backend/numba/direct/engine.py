"""LLVM for the direct compiler: one target machine and one MCJIT engine per process, O3 over
a module, machine code to and from the disk cache, symbols published by name.

Everything here is llvmlite's binding layer only (no Numba): a module is optimised with the
new pass manager at speed level 3 with loop and SLP vectorisation (Numba's settings for its
final module), emitted as an object file, and that object is what is loaded -- after a
compile as after reading it back from the disk cache -- so both paths run the same bytes.
"""
from __future__ import annotations

import threading

import llvmlite.binding as llb

_lock = threading.RLock()
_state = {}


def _init():
    st = _state.get("tm")
    if st is not None:
        return _state
    with _lock:
        if "tm" in _state:
            return _state
        llb.initialize_native_target()
        llb.initialize_native_asmprinter()
        target = llb.Target.from_triple(llb.get_process_triple())
        # JIT code on x86 needs the static relocation model (as Numba's CPU target)
        reloc = "static" if target.name.startswith("x86") else "default"
        tm = target.create_target_machine(
            cpu=llb.get_host_cpu_name(), features=llb.get_host_cpu_features().flatten(),
            opt=3, reloc=reloc, codemodel="jitdefault", jit=True)
        empty = llb.parse_assembly("")
        empty.triple = llb.get_process_triple()
        engine = llb.create_mcjit_compiler(empty, tm)
        _state["engine"] = engine
        _state["triple"] = llb.get_process_triple()
        _state["layout"] = str(tm.target_data)
        _state["tm"] = tm
    return _state


def triple_and_layout():
    """(target triple, data layout) a module must carry."""
    st = _init()
    return st["triple"], st["layout"]


def host_fingerprint():
    """What machine code depends on besides the source: the CPU and its features."""
    return f"{llb.get_process_triple()} {llb.get_host_cpu_name()} " \
           f"{llb.get_host_cpu_features().flatten()} llvm{llb.llvm_version_info}"


def optimise_and_emit(ir_text):
    """Parse, verify, optimise (O3) and emit the module `ir_text`: its object file's bytes."""
    st = _init()
    with _lock:                      # (one target machine: not shared between threads)
        mod = llb.parse_assembly(ir_text)
        mod.verify()
        pto = llb.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llb.create_pass_builder(st["tm"], pto)
        pm = pb.getModulePassManager()
        pm.run(mod, pb)
        return st["tm"].emit_object(mod)


def load_object(obj, names):
    """Load object-file bytes `obj` into this process's engine; the addresses of its
    functions `names` (which are then published to LLVM's symbol table, so later modules
    declaring them link to these)."""
    st = _init()
    with _lock:
        eng = st["engine"]
        eng.add_object_file(llb.ObjectFileRef.from_data(obj))
        eng.finalize_object()
        addrs = {}
        for n in names:
            a = eng.get_function_address(n)
            if not a:
                raise RuntimeError(f"direct compiler: symbol {n!r} missing from its object")
            llb.add_symbol(n, a)
            addrs[n] = a
        return addrs
