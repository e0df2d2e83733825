"""Output: DICOM RT export (CT, RTSTRUCT, RTDOSE, RTPLAN), de-identification and DICOM C-STORE.

Modules: ``dicom_export`` (the export API), ``ct_writer``, ``rtstruct_writer``,
``rtdose_writer``, ``rtplan_writer`` (one IOD each), ``dicom_common`` (modules shared by all
objects), ``geometry`` (patient positions), ``contours`` (masks <-> planar contours),
``dataset`` (the guarded read of one DICOM file), ``anonymise``, ``send`` (C-STORE),
``plan_dir`` (the plan-directory format) and ``commands`` (the ``iort export`` and ``iort send``
commands). Reading DICOM into the model (CT series, RTSTRUCT, RTDOSE; CT -> Phantom) is an
input, in ``openiort.inputs``; the HU calibration is in ``openiort.anatomy.hu_calibration``.
"""
