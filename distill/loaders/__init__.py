"""The bundled data-set loaders, one per module; ``distill.data_registry`` lists each by dotted path.

Nothing here is imported until a recipe names the loader (``data.name``).
"""
