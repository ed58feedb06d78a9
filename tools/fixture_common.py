"""Pieces shared by the fixture and benchmark scripts (Python tooling only)."""
import os
import sys
import types


def import_torchvision():
    """Imports torchvision, working around a torchvision whose C++ ops cannot load.

    PyPI's Linux torchvision wheels are CUDA builds; next to a CPU-only torch their _C extension
    does not load, and `import torchvision` then fails in _meta_registrations (it registers fake
    kernels for torchvision::nms and friends, which do not exist). The model definitions (and
    what zennit and pytorch_grad_cam use) are pure Python, so on that failure the registrations
    are skipped.
    """
    try:
        import torchvision

        return torchvision
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    import torchvision

    print("note: torchvision's C++ ops did not load (CUDA wheel next to CPU torch); "
          "using its pure-Python parts only", file=sys.stderr)
    return torchvision


def replace_readme_section(path, begin, end, section):
    """Writes `section` (which starts with `begin` and ends with `end`) into the Markdown file at
    `path`, replacing an earlier copy between the same markers, else appending it."""
    text = open(path).read() if os.path.exists(path) else ""
    if begin in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1].lstrip("\n") if end in rest else ""
        text = pre.rstrip("\n") + "\n\n" + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
    print(f"updated {path}")
