//! Validation does not allocate per segment: a transaction a thousand times longer costs only a
//! few more allocations (vectors that grow by doubling), not one or more per segment.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use priorauth::x12::guide::{guide, validate_278};
use priorauth::x12::{Location, SliceReader, Unit};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn request(lines: usize) -> String {
    let isa = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~";
    let mut body = String::from(
        "BHT*0007*13*REF1*20240101*1200~HL*1**20*1~NM1*X3*2*PAYER*****PI*12345~HL*2*1*21*1~\
NM1*1P*2*CLINIC*****XX*1234567893~N3*1 MAIN ST~N4*CITY*CA*90000~PER*IC*BOB*TE*5555555555~\
HL*3*2*22*1~NM1*IL*1*DOE*JANE****MI*M123~DMG*D8*19800101*F~HL*4*3*EV*1~TRN*1*T1*1234567890~\
UM*HS*I*3*11:B~DTP*AAH*D8*20240105~HI*ABK:M5416*ABF:E119~",
    );
    for i in 0..lines {
        body.push_str(&format!(
            "HL*{}*4*SS*0~TRN*1*L{i}*1234567890~UM*HS*I*3~DTP*472*RD8*20240105-20240110~SV1*HC:99213:25**UN*1~\
PWK*03*FX***AC*A{i}~NM1*SJ*1*DOE*JOHN****XX*1234567893~PRV*PE*PXC*207Q00000X~",
            i + 5
        ));
    }
    let n = body.matches('~').count() + 2;
    format!(
        "{isa}GS*HI*S*R*20240101*1200*1*X*005010X217~ST*278*0001*005010X217~{body}SE*{n}*0001~GE*1*1~IEA*1*000000001~"
    )
}

fn allocations_to_validate(data: &str) -> (usize, usize) {
    let tx = SliceReader::new(data.as_bytes())
        .filter_map(|u| match u.unwrap() {
            Unit::Transaction(t) => Some(t),
            _ => None,
        })
        .next()
        .unwrap();
    let loc = Location::default();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let issues = validate_278(&tx, &loc);
    let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(issues.is_empty(), "{:?}", &issues[..issues.len().min(3)]);
    (n, tx.segment_count)
}

#[test]
fn no_allocation_per_segment() {
    guide(); // the one-time load is not part of validating
    let (small, small_segments) = allocations_to_validate(&request(2));
    let (large, large_segments) = allocations_to_validate(&request(2000));
    assert!(
        large_segments > 1000 * small_segments / 10,
        "{small_segments} {large_segments}"
    );
    eprintln!("allocations: {small} for {small_segments} segments, {large} for {large_segments}");
    // Growth is logarithmic (doubling vectors and the HL id map), nowhere near the 16,000 extra segments.
    assert!(
        large < small + 100,
        "{small} allocations for {small_segments} segments, {large} for {large_segments}"
    );
}
