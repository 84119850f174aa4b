//! DataFrames across the Python boundary through the Arrow C data interface, without copying:
//! polars hands each column's buffers to arrow-rs (polars-arrow export → arrow-rs import of the
//! same C structs), and pyo3-arrow exposes them as an Arrow C stream (`__arrow_c_stream__`), which
//! polars, pyarrow, pandas and DuckDB read in place. The way in is the same path reversed.

use std::sync::Arc;

use arrow_array::{Array as _, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use polars::prelude::{CompatLevel, DataFrame, Series};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use pyo3_arrow::ffi::{to_stream_pycapsule, ArrayIterator};
use pyo3_arrow::input::AnyRecordBatch;

use crate::error::{data_error, guard};

// The two crates' C structs are the same ABI struct (the Arrow C data interface); check sizes
// at compile time so that a layout change in either fails the build, not at run time.
const _: () = assert!(
    std::mem::size_of::<polars_arrow::ffi::ArrowArray>()
        == std::mem::size_of::<arrow_array::ffi::FFI_ArrowArray>()
);
const _: () = assert!(
    std::mem::size_of::<polars_arrow::ffi::ArrowSchema>()
        == std::mem::size_of::<arrow_schema::ffi::FFI_ArrowSchema>()
);

/// One polars array as an arrow-rs array, sharing its buffers.
fn to_arrow_rs(
    array: Box<dyn polars_arrow::array::Array>,
    field: &polars_arrow::datatypes::Field,
) -> PyResult<(ArrayRef, Field)> {
    let c_array = polars_arrow::ffi::export_array_to_c(array);
    let c_schema = polars_arrow::ffi::export_field_to_c(field);
    // SAFETY: both are the C data interface's structs (sizes checked above); ownership of the
    // buffers moves with the release callbacks, which arrow-rs calls when it drops the array.
    use arrow_array::ffi::FFI_ArrowArray as RsArray;
    use arrow_schema::ffi::FFI_ArrowSchema as RsSchema;
    use polars_arrow::ffi::{ArrowArray as PlArray, ArrowSchema as PlSchema};
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<PlArray, RsArray>(c_array),
            std::mem::transmute::<PlSchema, RsSchema>(c_schema),
        )
    };
    let data = unsafe { arrow_array::ffi::from_ffi(c_array, &c_schema) }
        .map_err(|e| data_error(format!("exporting column '{}': {e}", field.name)))?;
    let out_field = Field::try_from(&c_schema)
        .map_err(|e| data_error(format!("exporting column '{}': {e}", field.name)))?;
    Ok((arrow_array::make_array(data), out_field))
}

/// One arrow-rs array as a polars array, sharing its buffers.
fn to_polars(array: &ArrayRef, field: &Field) -> PyResult<Box<dyn polars_arrow::array::Array>> {
    let (c_array, c_schema) = arrow_array::ffi::to_ffi(&array.to_data())
        .map_err(|e| data_error(format!("importing column '{}': {e}", field.name())))?;
    let c_schema = arrow_schema::ffi::FFI_ArrowSchema::try_from(field).unwrap_or(c_schema);
    // SAFETY: as in `to_arrow_rs`, the other way round.
    use arrow_array::ffi::FFI_ArrowArray as RsArray;
    use arrow_schema::ffi::FFI_ArrowSchema as RsSchema;
    use polars_arrow::ffi::{ArrowArray as PlArray, ArrowSchema as PlSchema};
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<RsArray, PlArray>(c_array),
            std::mem::transmute::<RsSchema, PlSchema>(c_schema),
        )
    };
    let pl_field = unsafe { polars_arrow::ffi::import_field_from_c(&c_schema) }
        .map_err(|e| data_error(format!("importing column '{}': {e}", field.name())))?;
    unsafe { polars_arrow::ffi::import_array_from_c(c_array, pl_field.dtype) }
        .map_err(|e| data_error(format!("importing column '{}': {e}", field.name())))
}

/// A polars DataFrame as arrow-rs record batches (one per chunk) and their schema.
pub fn to_batches(df: &DataFrame) -> PyResult<(Vec<RecordBatch>, SchemaRef)> {
    let mut df = df.clone();
    // Columns must be chunked alike for record batches; usually a no-op (no copy).
    df.align_chunks_par();
    let pl_schema: Vec<polars_arrow::datatypes::Field> = df
        .columns()
        .iter()
        .map(|c| c.field().to_arrow(CompatLevel::newest()))
        .collect();
    let mut fields: Option<Vec<Field>> = None;
    let mut batches = Vec::new();
    for chunk in df.iter_chunks(CompatLevel::newest(), false) {
        let mut columns = Vec::with_capacity(pl_schema.len());
        let mut fs = Vec::with_capacity(pl_schema.len());
        for (array, field) in chunk.into_arrays().into_iter().zip(&pl_schema) {
            let (a, f) = to_arrow_rs(array, field)?;
            columns.push(a);
            fs.push(f);
        }
        let schema = Arc::new(Schema::new(fs.clone()));
        fields.get_or_insert(fs);
        batches.push(
            RecordBatch::try_new(schema, columns)
                .map_err(|e| data_error(format!("building a record batch: {e}")))?,
        );
    }
    let schema = Arc::new(Schema::new(match fields {
        Some(f) => f,
        // No rows in any chunk: the schema alone (from a converted empty frame).
        None => pl_schema
            .iter()
            .map(|f| {
                to_arrow_rs(polars_arrow::array::new_empty_array(f.dtype.clone()), f)
                    .map(|(_, f)| f)
            })
            .collect::<PyResult<Vec<_>>>()?,
    }));
    Ok((batches, schema))
}

/// Record batches (from any Arrow C stream) as one polars DataFrame, column chunks shared.
pub fn from_batches(batches: &[RecordBatch], schema: &SchemaRef) -> PyResult<DataFrame> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let chunks = batches
            .iter()
            .map(|b| to_polars(b.column(i), field))
            .collect::<PyResult<Vec<_>>>()?;
        let series = if chunks.is_empty() {
            Series::from_arrow(
                field.name().as_str().into(),
                to_polars(&arrow_array::new_empty_array(field.data_type()), field)?,
            )
        } else {
            Series::from_arrow_chunks(field.name().as_str().into(), chunks)
        }
        .map_err(|e| data_error(format!("importing column '{}': {e}", field.name())))?;
        columns.push(series.into());
    }
    DataFrame::new_infer_height(columns)
        .map_err(|e| data_error(format!("building a DataFrame: {e}")))
}

/// Any object exporting `__arrow_c_stream__` (or `__arrow_c_array__`) as a polars DataFrame.
pub fn extract_frame(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    let input: AnyRecordBatch = obj.extract()?;
    let table = input
        .into_table()
        .map_err(|e| data_error(format!("reading an Arrow stream: {e}")))?;
    let (batches, schema) = table.into_inner();
    guard(|| from_batches(&batches, &schema))
}

/// A DataFrame handed to Python: polars' columns behind the Arrow PyCapsule interface.
/// `polars.DataFrame(x)`, `pyarrow.table(x)` and `pandas.DataFrame(x)` read it without copying.
#[pyclass(name = "DataFrame", module = "sandwich", frozen)]
pub struct PyDataFrame {
    pub df: DataFrame,
}

#[pymethods]
impl PyDataFrame {
    /// The Arrow C stream of this frame's record batches (the Arrow PyCapsule interface).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let (batches, schema) = guard(|| to_batches(&self.df))?;
        let fields = schema.fields().clone();
        let arrays = batches.into_iter().map(|b| {
            let a: ArrayRef = Arc::new(arrow_array::StructArray::from(b));
            Ok(a)
        });
        let reader = Box::new(ArrayIterator::new(
            arrays,
            Arc::new(Field::new_struct("", fields, false)),
        ));
        Ok(to_stream_pycapsule(py, reader, requested_schema)?)
    }

    /// (rows, columns)
    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.df.shape()
    }

    /// The column names, in order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// This frame as a `polars.DataFrame`, sharing its buffers (needs polars installed).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("polars")?
            .getattr("DataFrame")?
            .call1((slf,))
    }

    /// This frame as a `pyarrow.Table`, sharing its buffers (needs pyarrow installed).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("pyarrow")?.getattr("table")?.call1((slf,))
    }

    /// A notebook shows the frame as polars' HTML table.
    fn _repr_html_(&self) -> String {
        format!("<pre>{}</pre>", html_escape(&format!("{}", self.df)))
    }

    fn __len__(&self) -> usize {
        self.df.height()
    }

    fn __repr__(&self) -> String {
        format!("{}", self.df)
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn frames_round_trip_through_arrow_rs_with_the_same_buffers() {
        let df = df!("x" => [1i64, 2, 3], "s" => ["a", "bb", "ccc"], "f" => [Some(0.5), None, Some(2.0)])
            .unwrap();
        let (batches, schema) = to_batches(&df).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(schema.fields().len(), 3);
        // Zero copy: arrow-rs points at polars' value buffer.
        let pl_ptr = df
            .column("x")
            .unwrap()
            .i64()
            .unwrap()
            .cont_slice()
            .unwrap()
            .as_ptr();
        let rs = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(rs.values().as_ptr(), pl_ptr);
        let back = from_batches(&batches, &schema).unwrap();
        assert!(back.equals_missing(&df));
    }
}
