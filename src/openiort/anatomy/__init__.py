"""Anatomy: material library, breast phantom from case measurements, CT import."""
