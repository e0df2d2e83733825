"""Anatomy: material library, breast phantom from case measurements, HU calibration, applicator
placement (the CT import that uses them is ``openiort.inputs.ct``)."""
