"""Eureka's REST API (`/eureka/apps`, `/eureka/v2/apps`) over the same catalog.

`wire.py` reads and writes Eureka's InstanceInfo (JSON and XML, as Netflix's
`EurekaJacksonCodec` and XStream `Converters` do); `mapping.py` maps an
instance onto a waypost service instance and back; `handlers.py` serves the
routes (`http/routes.py` lists them) through `Registry` only.
"""
