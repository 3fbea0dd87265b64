"""Tools users run (`make proof`, `make boot-check`, `make bench`); tests/ drives some of them."""
