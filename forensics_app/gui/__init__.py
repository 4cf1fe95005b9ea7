"""The desktop application: a PySide6 window over the Qt-free engine in ``forensics_app.core``.

Everything heavy (decoding, models, display preparation, thumbnails) runs off the GUI thread; the
window only shows what the engine found and never computes scores itself.
"""
