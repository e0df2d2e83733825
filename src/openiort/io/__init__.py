"""Input and output: DICOM RT export (CT, RTSTRUCT, RTDOSE, RTPLAN), CT/RTSTRUCT reading,
de-identification and DICOM C-STORE.

Modules: ``dicom_export`` (the export API), ``ct_writer``, ``rtstruct_writer``,
``rtdose_writer``, ``rtplan_writer`` (one IOD each), ``dicom_common`` (modules shared by all
objects), ``geometry`` (patient positions), ``contours`` (masks <-> planar contours),
``dicom_read`` (CT series, RTSTRUCT and RTDOSE readers), ``anonymise``, ``send`` (C-STORE),
``plan_dir`` (the plan-directory format) and ``commands`` (the ``iort export`` and ``iort send``
commands). The CT -> Phantom conversion lives in ``openiort.anatomy.ct``.
"""
