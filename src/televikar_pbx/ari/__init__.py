"""The ARI adapter (``ari.adapter``): aioari behind one module, for the call shell."""
