"""Inputs: reading DICOM into the model (layer 5, above the planners and the writers).

Modules: ``dicom_read`` (CT series, RTSTRUCT and RTDOSE readers onto LPS grids) and ``ct``
(``load_ct_phantom``: a CT series and its RTSTRUCT -> ``Phantom`` through the HU calibration of
``openiort.anatomy.hu_calibration``). The guarded file read they share with the writers is
``openiort.io.dataset.read_dataset``.
"""
