"""Customer reports as documents.

``reports.pdf.render_sla_pdf`` makes a customer's SLA report as a PDF: the figures of
``domain.sla``, a chart (``reports.chart``) and the call log of ``CallRepository``, in
the words and number formats of ``sla report`` and ``calls list`` (``reports.labels``,
``reports.rows``). This package imports nothing heavy itself: fpdf2 loads with
``reports.pdf``, matplotlib only when a chart is drawn.
"""
