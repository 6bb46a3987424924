"""LLVM for the direct compiler in this process: one target machine and one MCJIT engine,
machine code loaded and its symbols published by name.

Everything here is llvmlite's binding layer only (no Numba). A module is optimised and
emitted as an object file (`codegen.py`, here or on a lane thread), and that object is
what is loaded -- after a compile as after reading it back from the disk cache -- so both
paths run the same bytes.
"""
from __future__ import annotations

import threading

import llvmlite.binding as llb

from . import codegen

_lock = threading.RLock()          # the engine (loading objects) and set-up
_tm_lock = threading.Lock()        # the target machine (not shared between threads)
_state = {}


def host_cpu():
    """(CPU name, feature string) machine code is compiled for: this host's."""
    return llb.get_host_cpu_name(), llb.get_host_cpu_features().flatten()


def _init():
    st = _state.get("tm")
    if st is not None:
        return _state
    with _lock:
        if "tm" in _state:
            return _state
        tm = codegen.target_machine(*host_cpu())
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
    """Module `ir_text` optimised (O3) and emitted in this process: its object file's bytes
    (`codegen.optimise_and_emit`; `lanes.py` runs it on its threads)."""
    st = _init()
    with _tm_lock:
        return codegen.optimise_and_emit(st["tm"], ir_text)


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
