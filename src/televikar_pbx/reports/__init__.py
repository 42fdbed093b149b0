"""What the customers read, and how it is made.

- ``call_log``: a customer's calls by its local dates, as the Norwegian table, CSV and
  JSON of ``calls list``; ``sla_table``: ``sla report``'s Norwegian table and CSV;
  ``csvout``: CSV that Excel with Norwegian settings opens; ``table``: aligned text.
- ``sla_figures``: the SLA figures read from the call log (facts: ``domain.call_facts``,
  figures: ``domain.sla``), and the nightly job's store of them.
- ``pdf`` (with ``chart``, ``labels``, ``rows``): the customer's PDF report, nb or en.
- ``delivery`` and ``mail``: the report e-mails, what is due, their records, SMTP.

This package imports nothing heavy itself: fpdf2 loads with ``reports.pdf``, matplotlib
only when a chart is drawn. It may use ``db`` and ``domain``, never ``admin`` (README,
"Layers").
"""
